from agentops.cli.app import main

main()
