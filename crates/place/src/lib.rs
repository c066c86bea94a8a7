//! VMShadow placement: location-sensitivity ranking, greedy heuristics and an exact ILP.
