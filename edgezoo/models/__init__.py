"""The zoo's model families, one file each; importing a file registers its cards. ``edgezoo.zoo``
imports them all (this package imports none, so a model file can use another's card)."""
