"""VAST: variational style enhancer with a Householder flow and the hybrid AR/NAR expression decoder."""
