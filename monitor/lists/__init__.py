"""Platform lists: read, check, and import the domain lists the classifier matches against.

``files``: the list file format, read and checked line by line; ``directories``: the
directories loaded in order (shipped, a school's own, the review app's) into one ``ListSet``;
``public``: importing public lists into a platform list file.
"""
