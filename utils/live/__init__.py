"""Live face swap: a camera in, swapped frames out (window, virtual camera, file), latency before completeness."""
