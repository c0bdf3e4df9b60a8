"""The opt-out ("Do Not Train") registry: artists list what must never be trained on."""
