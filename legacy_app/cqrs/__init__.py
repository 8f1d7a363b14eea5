"""The shop's migration to CQRS, written on the generic ``cqrs_layer`` toolkit."""
