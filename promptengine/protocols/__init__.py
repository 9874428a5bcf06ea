"""The evaluation protocols (base2new, fewshot, xd, dg): their runs, the folders they write, and the scripts that run them."""
