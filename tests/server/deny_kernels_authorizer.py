"""A Jupyter authorizer for the relay tests: allows everything except the ``kernels`` resource."""

from jupyter_server.auth.authorizer import Authorizer


class DenyKernels(Authorizer):
    def is_authorized(self, handler, user, action, resource):  # noqa: ANN001 - jupyter_server's signature
        return resource != "kernels"
