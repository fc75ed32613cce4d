"""Type stubs of dynap's Python API (the extension module ``dynap._native``)."""

from os import PathLike
from typing import Any, Dict, List, Mapping as _Map, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

ArrayLike = npt.ArrayLike
Path = Union[str, "PathLike[str]"]

__version__: str

def parameter_names() -> List[str]:
    """The 24 DynapSim parameters by Rockpool's names (the 13 currents first)."""

class Simulation:
    """A run's outputs, each ``[batch, steps, N]`` in the input's precision."""

    spikes: np.ndarray
    imem: Optional[np.ndarray]
    isyn: Optional[np.ndarray]
    iahp: Optional[np.ndarray]
    vmem: Optional[np.ndarray]
    fields: List[str]
    def as_dict(self) -> Dict[str, np.ndarray]: ...

class Network:
    """DynapSim neurons behind input weights (Rockpool's ``Sequential(LinearJax, DynapSim)``)."""

    def __init__(
        self,
        w_in: Optional[ArrayLike],
        w_rec: Optional[ArrayLike] = None,
        *,
        iscale: float = 1e-8,
        dt: float = 1e-3,
        variant: str = "rockpool",
        **currents: ArrayLike,
    ) -> None: ...
    @property
    def n(self) -> int: ...
    @property
    def n_in(self) -> int: ...
    @property
    def w_in(self) -> Optional[np.ndarray]: ...
    @property
    def w_rec(self) -> np.ndarray: ...
    @property
    def iscale(self) -> float: ...
    @property
    def dt(self) -> float: ...
    @property
    def variant(self) -> str: ...
    @property
    def currents(self) -> Dict[str, np.ndarray]: ...
    @property
    def parameters(self) -> Dict[str, np.ndarray]: ...
    def __getattr__(self, name: str) -> np.ndarray: ...
    def __setattr__(self, name: str, value: ArrayLike) -> None:
        """``w_in``, ``w_rec`` (same shapes) or a parameter by Rockpool's name, checked."""
    def simulate(self, x: ArrayLike, *, record: bool = True) -> Simulation: ...
    def value_and_grad(
        self,
        x: ArrayLike,
        target: ArrayLike,
        loss: str = "raster_mse",
        *,
        decay: Optional[float] = None,
        currents: bool = True,
    ) -> Tuple[float, Dict[str, np.ndarray]]: ...
    def to_json(self, path: Path) -> None: ...
    @staticmethod
    def from_json(path: Path) -> "Network": ...
    @staticmethod
    def from_rockpool(module: Any) -> "Network": ...
    def to_rockpool(self) -> Any: ...
    @staticmethod
    def from_nir(
        source: Union[Path, str, bytes, Any],
        *,
        dt: float = 1e-3,
        variant: str = "chip",
        iscale: float = 1e-8,
        average: bool = False,
    ) -> "Network": ...
    def to_nir(self, path: Path) -> None: ...

class Quantized:
    @property
    def network(self) -> Network: ...
    @property
    def relative_rms_error(self) -> float: ...

class Configuration:
    def to_json(self, path: Path) -> None: ...
    def to_json_string(self) -> str: ...
    @staticmethod
    def from_json(path: Path) -> "Configuration": ...
    def validate(self, mapping: Optional["Mapping"] = None) -> List[str]: ...

class Mapping:
    @property
    def neurons(self) -> int: ...
    @property
    def inputs(self) -> int: ...
    def to_json(self, path: Path) -> None: ...
    @staticmethod
    def from_json(path: Path) -> "Mapping": ...

class Emulator:
    def __init__(
        self, config: Configuration, mapping: Mapping, mismatch: float = 0.1, seed: int = 0
    ) -> None: ...
    def run(self, x: ArrayLike) -> np.ndarray: ...

def quantize(net: Network) -> Quantized: ...
def map(quantized: Quantized) -> Tuple[Configuration, Mapping]: ...
def unmap(config: Configuration, mapping: Mapping) -> Network: ...
def train(
    config: Union[Path, _Map[str, Any]], out_dir: Path, *, resume: bool = False, progress: bool = False
) -> Dict[str, Any]: ...
