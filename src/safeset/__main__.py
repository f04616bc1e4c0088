from safeset.cli import main

main()
