"""The Docker deployment of TuiTalk: engine control, image builds and the compose project.

Modules:

- :mod:`compose.dockerd`: start/stop *our own* Docker engine (vfs storage, no iptables, no
  bridge) when none is running.
- :mod:`compose.render`: the nginx and Redis configuration files of the containers, rendered
  from the local launcher so that both deployments stay in step.
- :mod:`compose.images`: debootstrap a Debian 12 root file system, ``docker import`` it and
  build the images from the Dockerfiles here; skips whatever is already up to date.
- :mod:`compose.deploy`: bring the compose project up or down (docker-compose v1) on
  loopback ports chosen by environment variables.

Nothing here runs at import time.
"""
