"""inna-optax: INNA, the Inertial Newton Algorithm (Castera et al., JMLR 2021), and
INNAprop (Bolte et al., 2024), for optax."""

from inna_optax._inna import (
    InnaState,
    inna,
    inverse_power_decay,
    lyapunov_energy,
    scale_by_inna,
)
from inna_optax._innaprop import InnapropState, innaprop, scale_by_innaprop
from inna_optax._weight_decay import decay_rate, equivalent_weight_decay, weight_decay_response

__version__ = "0.2.0"

__all__ = [
    "InnaState",
    "InnapropState",
    "decay_rate",
    "equivalent_weight_decay",
    "inna",
    "innaprop",
    "inverse_power_decay",
    "lyapunov_energy",
    "scale_by_inna",
    "scale_by_innaprop",
    "weight_decay_response",
]
