"""The catalog: public-domain stock, one search over everything on offer, collections."""
