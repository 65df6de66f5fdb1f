"""inna-optax: INNA, the Inertial Newton Algorithm (Castera et al., JMLR 2021), for optax."""

from inna_optax._inna import (
    InnaState,
    inna,
    inverse_power_decay,
    lyapunov_energy,
    scale_by_inna,
)

__version__ = "0.1.0"

__all__ = [
    "InnaState",
    "inna",
    "inverse_power_decay",
    "lyapunov_energy",
    "scale_by_inna",
]
