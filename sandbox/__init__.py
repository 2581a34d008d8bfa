"""Running proposed programs and expressions safely: static screens, then isolated workers."""
