"""A second legacy app, the blog, with its own behaviour suite.

It plays "a real app nobody here wrote": a microblog-style Flask app that knows nothing of
the toolkit or the shop.
"""
