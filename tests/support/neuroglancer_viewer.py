"""neuroglancer's own viewer for the browser tests: a `neuroglancer.Viewer` (the package's
server and its built client) on a loopback port, with the viewer state given as JSON in the
first argument. Prints `listening on URL` (the viewer's URL), then serves until its stdin
ends."""

import json
import sys

import neuroglancer


def main():
    neuroglancer.set_server_bind_address("127.0.0.1", 0)
    viewer = neuroglancer.Viewer()
    viewer.set_state(neuroglancer.ViewerState(json.loads(sys.argv[1])))
    print(f"listening on {viewer.get_viewer_url()}", flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
