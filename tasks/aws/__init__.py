"""AWS access for task handlers: connector credentials -> aioboto3 session -> clients."""
