"""`transferline study labels | active`: measurements of what transfer learning and active learning buy."""
