"""The release: manifests and versions, the dataset card, Croissant metadata, the Hub client, and `corpus publish`
(build the release folder, upload it as a tagged Hub commit)."""
