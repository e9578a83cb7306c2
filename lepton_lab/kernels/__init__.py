"""The ``lepton-cpu`` and ``lepton-gpu`` kernels: their launcher and device defaults."""
