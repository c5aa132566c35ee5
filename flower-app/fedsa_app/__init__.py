"""fedsa on Flower: the ServerApp runs fedsa's own server (the Rust engine) and the ClientApp
fedsa's own node; this package only carries their messages over Flower."""
