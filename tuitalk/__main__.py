from tuitalk.cli import main

main()
