"""cartnet: plan and run a global network of autologous CAR-T manufacturing sites."""

__version__ = "0.1.0"
