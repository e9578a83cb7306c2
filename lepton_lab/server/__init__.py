"""The jupyter-server extension: the lab's cluster, REST API and OpenAPI document."""
