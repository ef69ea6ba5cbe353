"""params.yaml read once into frozen, typed objects (params.py), and one experiment's whole
configuration resolved from them (experiment.py). Nothing here trains, reads data or draws."""
