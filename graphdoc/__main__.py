from graphdoc.cli import run

run()
