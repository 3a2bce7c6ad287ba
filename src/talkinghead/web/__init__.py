"""`talkinghead serve`: a local web page for generating talking-head videos."""
