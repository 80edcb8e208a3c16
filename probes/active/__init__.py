"""Active probes: real orders on a PAPER account, every one through :class:`PaperGuard`.

The passive probes prove data flows; only a real order proves the order path (placement, fills,
cancels, positions) works. These probes are bounded by hard limits, tagged with an orderRef, and
journalled before they are sent, so a crash can always be cleaned up.
"""
