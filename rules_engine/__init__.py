"""Pure decision engine: policies in, decisions out. Imports nothing else of Tollgate's."""
