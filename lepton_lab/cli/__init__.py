"""The ``lepton-lab`` command line."""
