"""Distributed fit on the lab's cluster: rank placement, rendezvous, reporting, restarts."""

from lepton_lab.training.context import RunStopped, TrainContext, context
from lepton_lab.training.fit import fit

__all__ = ["RunStopped", "TrainContext", "context", "fit"]
