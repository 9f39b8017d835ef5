"""Pictures of plans: the stage graph as self-contained HTML/SVG."""
