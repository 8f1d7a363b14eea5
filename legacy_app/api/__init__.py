"""The shop's JSON API, one blueprint per resource."""
