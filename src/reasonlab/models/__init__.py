"""Models: the zoo (build / load / save), the one training loop, its losses, data and base training."""
