"""The compact StyleGAN2-style generator and pSp-style encoder that StyleTalker and StyleHEAT drive."""
