"""Slot capacity, slot-chain offers across the whole network, and backlog optimization."""
