#!/usr/bin/env python3
"""Reference values for fedsa's privacy accountant (fedsa-aggregators/src/privacy/accountant.rs),
from Opacus' Renyi accountant of the subsampled Gaussian mechanism: `compute_rdp` and
`get_privacy_spent` of `opacus/accountants/analysis/rdp.py`, over `RDPAccountant.DEFAULT_ALPHAS`.

Opacus' package imports torch; the analysis module needs only numpy and scipy, so it is loaded
by file path and torch is never imported. How the committed values were produced (opacus 1.6.0,
numpy 2.4.6, scipy 1.17.1, Python 3.11):

    python3 -m venv ../dp-venv   # from the repository root; any folder outside it will do
    ../dp-venv/bin/pip install --no-deps opacus
    ../dp-venv/bin/pip install numpy scipy
    ../dp-venv/bin/python scripts/dp-reference.py

It prints Rust array literals that the accountant's tests hold (fedsa-aggregators/tests/privacy.rs).
"""
import importlib.metadata
import importlib.util
import os

# The location of the installed package, found without importing it (its __init__ imports torch).
_opacus = importlib.util.find_spec("opacus")
_path = os.path.join(_opacus.submodule_search_locations[0], "accountants", "analysis", "rdp.py")
_spec = importlib.util.spec_from_file_location("opacus_rdp", _path)
rdp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rdp)

# RDPAccountant.DEFAULT_ALPHAS (opacus/accountants/rdp.py), written out because that module
# imports the package.
ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))

# (q, sigma, T, delta): a sampled federation, every client every round, a small rate over many
# rounds, a large epsilon, a strict delta, half the clients per round, and the setting of
# examples/dp-fedsa.toml (3 of 3 clients, 8 rounds).
SETTINGS = [
    (0.3, 1.0, 8, 1e-5),
    (1.0, 1.1, 100, 1e-5),
    (0.01, 1.3, 1000, 1e-5),
    (0.1, 0.7, 50, 1e-3),
    (0.5, 2.0, 20, 1e-6),
    (0.5, 1.0, 8, 1e-5),
    (1.0, 1.0, 8, 1e-5),
]

# (q, sigma, order): RDP of one release at single orders, integer and fractional.
ORDER_CASES = [
    (0.3, 1.0, 1.5),
    (0.3, 1.0, 2.0),
    (0.3, 1.0, 10.9),
    (0.01, 1.3, 32),
    (0.1, 0.7, 4.7),
    (0.9, 0.5, 1.1),
]


def main() -> None:
    print(f"// opacus {importlib.metadata.version('opacus')}")
    print("// (q, sigma, releases, delta, epsilon, best order)")
    for q, sigma, steps, delta in SETTINGS:
        values = rdp.compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=ORDERS)
        eps, order = rdp.get_privacy_spent(orders=ORDERS, rdp=values, delta=delta)
        print(f"({q!r}, {sigma!r}, {steps}, {delta!r}, {float(eps)!r}, {float(order)!r}),")
    print("// (q, sigma, order, rdp of one release)")
    for q, sigma, order in ORDER_CASES:
        value = rdp.compute_rdp(q=q, noise_multiplier=sigma, steps=1, orders=float(order))
        print(f"({q!r}, {sigma!r}, {float(order)!r}, {float(value)!r}),")


if __name__ == "__main__":
    main()
