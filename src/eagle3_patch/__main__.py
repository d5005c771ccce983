from eagle3_patch.cli import main

main()
