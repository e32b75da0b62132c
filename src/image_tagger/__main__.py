from image_tagger.entry.cli import console

console()
