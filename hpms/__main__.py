from hpms.cli import main

main()
