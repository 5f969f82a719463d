"""farmland: classify farmland by soil contamination, track the safe-utilisation rate,
and plan re-sampling (GB 15618-2018, GB 2762)."""

__version__ = "0.1.0"
