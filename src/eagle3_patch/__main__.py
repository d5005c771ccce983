from eagle3_patch.cli import program

program()
