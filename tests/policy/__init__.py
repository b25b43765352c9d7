"""Tests of the Pulumi policy pack (policy/)."""
