"""The network model: products, markets, sites, approvals, centers, lanes, scenarios."""

from cartnet.network.calendar import WorkingCalendar
from cartnet.network.catalog import open_network, packaged_names
from cartnet.network.entities import (
    Approval,
    Demand,
    Market,
    Operator,
    OperatorKind,
    Product,
    Regulator,
    Scope,
    Site,
    StartingMaterial,
    TreatmentCenter,
)
from cartnet.network.files import FileProblem, NetworkFileError, load_network, parse_network
from cartnet.network.lanes import Lane, LaneDefaults
from cartnet.network.model import Network, NetworkError, Problem
from cartnet.network.scenario import Scenario, ScenarioError

__all__ = [
    "Approval",
    "Demand",
    "FileProblem",
    "Lane",
    "LaneDefaults",
    "Market",
    "Network",
    "NetworkError",
    "NetworkFileError",
    "Operator",
    "OperatorKind",
    "Problem",
    "Product",
    "Regulator",
    "Scenario",
    "ScenarioError",
    "Scope",
    "Site",
    "StartingMaterial",
    "TreatmentCenter",
    "WorkingCalendar",
    "load_network",
    "open_network",
    "packaged_names",
    "parse_network",
]
