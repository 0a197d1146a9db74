"""Stand-ins for the outside world (provider APIs) that speak its exact wire format on loopback."""
