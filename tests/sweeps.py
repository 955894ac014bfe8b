"""What the sweep tests share: a scripts/sweep_NN.py loaded as a module, its cache, and one comparison."""
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_script(nn: str):
    """scripts/sweep_<nn>.py as a module (the scripts folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"sweep_{nn}", ROOT / "scripts" / f"sweep_{nn}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_cache(nn: str) -> dict:
    """lora_mini/data/sweep_<nn>.json, the cache notebook <nn> reads."""
    return json.loads((ROOT / "lora_mini" / "data" / f"sweep_{nn}.json").read_text())


def plain(x):
    """As the JSON file holds it: tuples become lists."""
    return json.loads(json.dumps(x))


def close(a, b, tol: float = 1e-6, relative: bool = False) -> bool:
    """Equal structures, floats within ``tol`` (times max(1, |a|) when ``relative``); an exact match is a
    multiple of 1/512, so any real change is larger."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(close(a[k], b[k], tol, relative) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(close(x, y, tol, relative) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b) <= (tol * max(1.0, abs(a)) if relative else tol)
    return a == b
