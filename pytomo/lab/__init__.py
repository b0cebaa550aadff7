"""The built-in lab: an emulated video platform on loopback addresses."""
