"""Payments: the only package that imports `stripe`.

`gateway` turns Stripe's objects into our dataclasses and keys every call on our ids;
`emulator` is localstripe plus our extensions, for `marketplace run` without a Stripe key and for
the tests; `cli` holds the `stripe-emulator` command and the `run` that starts it beside the app.
"""
