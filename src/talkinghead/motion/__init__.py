"""Motion models: one package per family, each declaring its method in ``method.py`` (see
:mod:`talkinghead.registry`)."""
