"""The digital twin: a Monte Carlo discrete-event simulation of every order of a network,
replicated on common random numbers, with its KPIs and their confidence intervals."""
