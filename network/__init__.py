"""What GhostV2 trains: the AEI-Net generator and the multiscale discriminator."""
from network.aeinet import AEINet, convert_state_dict, describe_state_dict
from network.discriminator import MultiscaleDiscriminator

__all__ = ["AEINet", "MultiscaleDiscriminator", "convert_state_dict", "describe_state_dict"]
