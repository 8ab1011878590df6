"""Fleet-level planning: what the devices of a group (and, later, a site) pull for a target,
from the hub's twins. Above `hub` (it reads `DeviceTwin`s) and below `devices` and `rollout`
(which act on its plans); image-level planning (one device, one image) is `planning`."""
