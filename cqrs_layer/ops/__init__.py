"""What operators use: the ``flask cqrs`` commands and the JSON admin API. Only the
extension (the composition root) imports this layer. Private."""
